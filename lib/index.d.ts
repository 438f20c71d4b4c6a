export * from '../index'
